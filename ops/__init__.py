"""openlmis-ops: stand up and run OpenLMIS on AWS, and rehearse it all in a local lab."""
