"""crm: contacts, phones, e-mails, addresses, links, tags, search terms, leads, calls, notes

Revision ID: 0002
Revises: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _now() -> Any:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _ref(
    table: str, column: str, target: str, ondelete: str, nullable: bool = True
) -> "sa.Column[int]":
    fk = sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}")
    return sa.Column(column, sa.Integer(), fk, nullable=nullable)


def _contacts() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        _ref("contacts", "manager_id", "users", "SET NULL"),
        sa.Column("visibility", sa.String(8), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=False),
        _now(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_index("ix_contacts_manager_id", "contacts", ["manager_id", "id"])


def _leads() -> None:
    op.create_table(
        "leads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        _ref("leads", "responsible_id", "users", "SET NULL"),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("source_tags", sa.JSON(), nullable=False),
        sa.Column("origin_key", sa.String(80), nullable=True),
        _ref("leads", "converted_contact_id", "contacts", "SET NULL"),
        _now(),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("origin_key", name="uq_leads_origin_key"),
    )
    for column in ("status", "responsible_id", "converted_contact_id"):
        op.create_index(f"ix_leads_{column}", "leads", [column])


def _channels() -> None:
    """Phones and e-mails belong to a contact or to a lead; both are searched by value."""
    for table, value in (("phones", sa.Column("number", sa.String(20), nullable=False)),
                         ("emails", sa.Column("address", sa.String(254), nullable=False))):
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), primary_key=True),
            value,
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            _ref(table, "contact_id", "contacts", "CASCADE"),
            _ref(table, "lead_id", "leads", "CASCADE"),
        )
        for column in (value.name, "contact_id", "lead_id"):
            op.create_index(f"ix_{table}_{column}", table, [column])


def _contact_details() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("addresses", "contact_id", "contacts", "CASCADE", nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("street", sa.String(200), nullable=False),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("postcode", sa.String(20), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("links", "contact_id", "contacts", "CASCADE", nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_table(
        "contact_tags",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("contact_tags", "contact_id", "contacts", "CASCADE", nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.UniqueConstraint("contact_id", "tag", name="uq_contact_tags_contact_tag"),
    )
    op.create_table(
        "contact_terms",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("contact_terms", "contact_id", "contacts", "CASCADE", nullable=False),
        sa.Column("term", sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql"),
                  nullable=False),
    )
    op.create_index("ix_contact_terms_term", "contact_terms", ["term"])
    op.create_index("ix_contact_terms_contact_id", "contact_terms", ["contact_id"])
    op.create_index("ix_addresses_contact_id", "addresses", ["contact_id"])
    op.create_index("ix_links_contact_id", "links", ["contact_id"])
    op.create_index("ix_contact_tags_tag", "contact_tags", ["tag"])


def _calls() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.String(128), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("callee", sa.String(64), nullable=False),
        sa.Column("outside_number", sa.String(20), nullable=True),
        sa.Column("agent", sa.String(32), nullable=True),
        _ref("calls", "agent_user_id", "users", "SET NULL"),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("disposition", sa.String(12), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("recording_url", sa.String(500), nullable=True),
        sa.Column("transcript_status", sa.String(12), nullable=True),
        _ref("calls", "contact_id", "contacts", "SET NULL"),
        _ref("calls", "lead_id", "leads", "SET NULL"),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("pbx", sa.String(16), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.UniqueConstraint("call_id", name="uq_calls_call_id"),
    )
    for column in ("outside_number", "agent_user_id", "contact_id", "lead_id"):
        op.create_index(f"ix_calls_{column}", "calls", [column])
    op.create_index("ix_calls_started_at_id", "calls", ["started_at", "id"])


def _notes() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        _ref("notes", "contact_id", "contacts", "CASCADE"),
        _ref("notes", "lead_id", "leads", "CASCADE"),
        _ref("notes", "call_id", "calls", "CASCADE"),
        _ref("notes", "author_id", "users", "SET NULL"),
        sa.Column("text", sa.Text(), nullable=False),
        _now(),
    )
    for column in ("contact_id", "lead_id", "call_id"):
        op.create_index(f"ix_notes_{column}", "notes", [column])


def upgrade() -> None:
    _contacts()
    _leads()
    _channels()
    _contact_details()
    _calls()
    _notes()


def downgrade() -> None:
    for table in ("notes", "calls", "contact_terms", "contact_tags", "links", "addresses",
                  "emails", "phones", "leads", "contacts"):
        op.drop_table(table)
