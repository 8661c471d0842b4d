"""Lambda entry points (``handlers.<module>.handler``): parse the event, call the domain, shape the answer."""
