"""Declared scopes parse per connector; anything that is not a grant or an ACL rule is refused."""

import pytest

from governance.connectors.scopes import (
    PostgresGrant,
    ScopeError,
    destructive_reason,
    parse_aws_policy_arn,
    parse_postgres_grant,
    parse_redis_rule,
    parse_scopes,
    scope_errors,
)


@pytest.mark.parametrize(("scope", "grant"), [
    ("SELECT ON TABLE app.orders", PostgresGrant(("SELECT",), "TABLE", ("app", "orders"))),
    ("select, insert on table orders", PostgresGrant(("SELECT", "INSERT"), "TABLE", ("orders",))),
    ("USAGE ON SCHEMA app", PostgresGrant(("USAGE",), "SCHEMA", ("app",))),
    ("CONNECT, TEMP ON DATABASE appdb", PostgresGrant(("CONNECT", "TEMPORARY"), "DATABASE", ("appdb",))),
    ("SELECT ON ALL TABLES IN SCHEMA app", PostgresGrant(("SELECT",), "ALL TABLES IN SCHEMA", ("app",))),
    ("USAGE, SELECT ON SEQUENCE app.ids", PostgresGrant(("USAGE", "SELECT"), "SEQUENCE", ("app", "ids"))),
])
def test_postgres_grants_parse(scope, grant):
    assert parse_postgres_grant(scope) == grant


@pytest.mark.parametrize("scope", [
    "orders:read", "ALL PRIVILEGES ON TABLE app.orders", "SELECT ON TABLE app.orders WITH GRANT OPTION",
    "CONNECT ON TABLE app.orders", "SELECT ON TABLE app.orders; DROP TABLE x", "USAGE ON SCHEMA a.b",
    'SELECT ON TABLE "app"."orders"', "SUPERUSER", "SELECT ON DATABASE appdb",
])
def test_postgres_non_grants_are_refused(scope):
    with pytest.raises(ScopeError):
        parse_postgres_grant(scope)


@pytest.mark.parametrize("scope", ["~orders:*", "%R~cache:*", "%W~q:*", "&events:*", "+get", "-del", "+@read",
                                   "-@dangerous", "+config|get", "resetkeys", "ALLKEYS"])
def test_redis_rules_parse(scope):
    assert parse_redis_rule(scope) == (scope.lower() if scope.isalpha() else scope)


@pytest.mark.parametrize("scope", ["on", "off", ">secret", "<secret", "#abc", "!abc", "nopass", "reset",
                                   "resetpass", "(~x +get)", "get", "+GET x", "repo:read", "~"])
def test_redis_rules_that_are_not_declarable_are_refused(scope):
    with pytest.raises(ScopeError):
        parse_redis_rule(scope)


def test_parse_scopes_reports_every_bad_scope_and_leaves_free_form_kinds_alone():
    with pytest.raises(ScopeError) as caught:
        parse_scopes("postgres_role", ["SELECT ON TABLE a.b", "nope", "USAGE ON TABLE a.c"])
    assert len(caught.value.messages) == 2
    assert scope_errors("redis_acl", ["+get", " ", "~k:*"]) == []
    assert parse_scopes("openbao_kv", ["repo:read", " "]) == ("repo:read",)


@pytest.mark.parametrize("scope", ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/reader",
                                   "arn:aws:iam::123456789012:policy/team/orders/orders-reader",
                                   "arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess"])
def test_aws_policy_arns_parse(scope):
    assert parse_aws_policy_arn(f" {scope} ") == scope


@pytest.mark.parametrize("scope", ["s3:GetObject", "iam:*", "ReadOnlyAccess", "arn:aws:iam::123456789012:role/deploy",
                                   "arn:aws:iam::123456789012:user/app", "arn:aws:iam::12345:policy/short-account",
                                   "arn:aws:s3:::bucket/key", "arn:aws:iam::aws:policy/", '{"Statement": []}',
                                   "arn:aws:iam::aws:policy/a b"])
def test_aws_scopes_that_are_not_managed_policy_arns_are_refused(scope):
    with pytest.raises(ScopeError):
        parse_aws_policy_arn(scope)


def test_aws_administrator_policies_are_flagged_to_the_approver():
    assert destructive_reason("arn:aws:iam::aws:policy/AdministratorAccess") == "administers the AWS account"
    assert not destructive_reason("arn:aws:iam::aws:policy/ReadOnlyAccess")
