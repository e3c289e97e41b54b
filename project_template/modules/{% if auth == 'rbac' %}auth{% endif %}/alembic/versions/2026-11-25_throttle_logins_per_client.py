"""throttle logins per username and client address: auth_login_failures replaces auth_login_attempts

Revision ID: auth_0002
Revises: auth_0001
Create Date: 2026-11-25 (generated with src.core.migrations.make_revision, then made portable)

The old table counted failures per username alone (anyone could lock a user out). Its rows are
short-lived throttling state, so they are dropped rather than carried over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0002"
down_revision: str | Sequence[str] | None = "auth_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_login_failures")),
        sa.UniqueConstraint("scope", "client", "username", name=op.f("uq_auth_login_failures_scope")),
    )
    op.create_index(op.f("ix_auth_login_failures_expires_at"), "auth_login_failures", ["expires_at"], unique=False)
    op.drop_table("auth_login_attempts")


def downgrade() -> None:
    op.create_table(
        "auth_login_attempts",
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_auth_login_attempts")),
    )
    op.drop_index(op.f("ix_auth_login_failures_expires_at"), table_name="auth_login_failures")
    op.drop_table("auth_login_failures")
