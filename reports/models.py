"""Report jobs and evidence packs arrive with the reports issue."""
