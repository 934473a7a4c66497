"""Every write in Steward is one of these services: validate, write, audit, in one transaction."""
