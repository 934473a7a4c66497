"""Connectors: the small, typed interface through which Steward acts on external systems.

base (interface, references, results, errors), openbao_kv, openbao_pki, postgres_role,
redis_acl, and registry (which connector acts on a credential). See docs/connectors.md.
"""
