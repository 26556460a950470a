"""Stand-ins for the OpenLMIS Reference Distribution's images, for the lab (see README.md)."""
