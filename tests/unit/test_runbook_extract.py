from __future__ import annotations

from tests.runbook import extract, for_env

TEXT = """# A runbook

Check first:

```sh
inv status --env prod
```

At your registrar:

```sh manual
# create the CNAME records printed above
```

```python
print("not a command")
```
"""


def test_sh_blocks_are_extracted_in_order_with_manual_marked() -> None:
    blocks = extract(TEXT)
    assert [(b.line, b.manual) for b in blocks] == [(5, False), (11, True)]
    assert blocks[0].commands == "inv status --env prod\n"


def test_each_block_knows_its_section_heading() -> None:
    text = ("# Title\n\n```sh\ninv status --env prod\n```\n\n## A. Lost\n\n### A1. Check\n\n"
            "```sh manual\n# not a heading: a comment\naws ec2 terminate-instances\n```\n\n"
            "```sh\ninv provision --env prod\n```\n")
    assert [b.heading for b in extract(text)] == ["Title", "A1. Check", "A1. Check"]


def test_environment_is_substituted() -> None:
    assert for_env("inv deploy --env prod --plan; inv status --env=qa", "lab") == (
        "inv deploy --env lab --plan; inv status --env lab"
    )


def test_a_plan_with_changes_pending_is_not_a_failed_step() -> None:
    assert for_env("inv deploy --env prod --plan\ninv deploy --env prod\n", "lab") == (
        "inv deploy --env lab --plan || [ $? -eq 2 ]\ninv deploy --env lab\n"
    )
