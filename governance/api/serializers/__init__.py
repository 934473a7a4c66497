"""API serializers, one module per area. They shape input and output; services hold the rules."""
