"""redis:3.2.12 and driesva/proftpd as listeners: PING/PONG on 6379, an FTP greeting on 21."""

from __future__ import annotations

import socketserver


class Redis(socketserver.StreamRequestHandler):
    """Answers PING (inline or RESP) with +PONG, anything else with an error."""

    def handle(self) -> None:
        while line := self.rfile.readline():
            words = line.strip().split()
            if line.startswith(b"*"):  # a RESP array: read its bulk strings
                words = []
                for _ in range(int(line[1:])):
                    self.rfile.readline()
                    words.append(self.rfile.readline().strip())
            if not words:
                continue
            if words[0].upper() == b"PING":
                self.wfile.write(b"+PONG\r\n")
            else:
                self.wfile.write(b"-ERR unknown command '" + words[0] + b"'\r\n")


class Ftp(socketserver.StreamRequestHandler):
    """Greets, answers QUIT, refuses everything else."""

    def handle(self) -> None:
        self.wfile.write(b"220 ProFTPD Server (stand-in) ready.\r\n")
        while line := self.rfile.readline():
            if line.strip().upper().startswith(b"QUIT"):
                self.wfile.write(b"221 Goodbye.\r\n")
                return
            self.wfile.write(b"530 Please login with USER and PASS\r\n")


def main(role: str) -> None:
    handler, port = (Redis, 6379) if role == "redis" else (Ftp, 21)
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("0.0.0.0", port), handler) as server:
        print(f"{role} stand-in listening on {port}", flush=True)
        server.serve_forever()
