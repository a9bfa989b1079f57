"""The counter's answer to "I paid — where is it?": find a payment by what the citizen holds (application or
receipt number, the merchant order number on the voucher, an ID number) and explain its state in plain words."""

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Q
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reconciliation import causes
from reconciliation.journal_format import SHANGHAI
from reconciliation.models import Channel, JournalLine, LedgerEntry, ReconItem
from reconciliation.privacy import display_payer_ref, looks_like_id_number, protect_payer_ref

MAX_RESULTS = 50


@dataclass
class PaymentView:
    journal_line: JournalLine | None
    ledger_entry: LedgerEntry | None
    item: ReconItem | None
    outcome: str
    # The settlement's window: expected by (pending) or due by (overdue); never for a payment already settled.
    deadline: date | None = None
    # When the kiosk's journal is due, for a settled payment awaiting it.
    journal_due: datetime | None = None
    explanation: list[str] = field(default_factory=list)

    @property
    def settlement_overdue(self) -> bool:
        return self.outcome == "missing_in_ledger"

    @property
    def payer_ref_display(self) -> str:
        source = self.journal_line or self.ledger_entry
        return display_payer_ref(source.payer_ref) if source else ""


class Payments(list):
    """The PaymentViews a lookup found, and whether the number also finds payments the user may not see (of kiosks
    outside their districts): that is said, and nothing of those payments is shown."""

    outside_scope: bool = False


def find_payments(query: str, *, kiosk_scope=None) -> Payments:
    """Payments matching a payer reference, ID number, merchant order number or kiosk receipt (txn) number.

    kiosk_scope: a queryset of the kiosks the user may see, or None for all. A fixed number of queries."""
    from reconciliation.selectors import business_calendar, settlement_windows

    query = query.strip()
    if not query:
        return Payments()
    needle = protect_payer_ref(query) if looks_like_id_number(query) else query
    lines = JournalLine.objects.select_related("kiosk__site").filter(
        Q(payer_ref=needle) | Q(channel_ref=query) | Q(txn_id=query)
    )
    entries = LedgerEntry.objects.filter(Q(payer_ref=needle) | Q(channel_ref=query))
    outside_scope = False
    if kiosk_scope is not None:
        # Whether anything matches beyond the user's kiosks: asked, never read.
        outside_scope = lines.exclude(kiosk__in=kiosk_scope).exists() or entries.exclude(kiosk__in=kiosk_scope).exists()
        lines = lines.filter(kiosk__in=kiosk_scope)
        entries = entries.filter(kiosk__in=kiosk_scope)
    lines = list(lines.order_by("-occurred_at")[:MAX_RESULTS])
    keys = {(line.channel, line.channel_ref) for line in lines if line.channel_ref}
    ledger_by_key = {}
    if keys:
        key_filter = Q()
        for channel, ref in keys:
            key_filter |= Q(channel=channel, channel_ref=ref)
        ledger_by_key = {(e.channel, e.channel_ref): e for e in LedgerEntry.objects.filter(key_filter)}
    items = ReconItem.objects.select_related("ledger_entry").filter(
        Q(journal_line__in=lines) | Q(ledger_entry__in=entries, journal_line__isnull=True)
    )
    item_by_line = {}
    item_by_entry = {}
    for item in items:
        if item.journal_line_id:
            item_by_line[item.journal_line_id] = item
        else:
            item_by_entry[item.ledger_entry_id] = item
    calendar, windows = business_calendar(), settlement_windows()

    views = Payments()
    views.outside_scope = outside_scope
    seen_entries = set()
    for line in lines:
        item = item_by_line.get(line.pk)
        entry = (item.ledger_entry if item and item.ledger_entry_id else None) or ledger_by_key.get(
            (line.channel, line.channel_ref)
        )
        if entry:
            seen_entries.add(entry.pk)
        views.append(_view(line, entry, item, calendar, windows))
    for entry in entries.order_by("-settled_at")[:MAX_RESULTS]:
        if entry.pk not in seen_entries:
            views.append(_view(None, entry, item_by_entry.get(entry.pk), calendar, windows))
    return views


# Outcomes that say the settlement has not arrived: the only ones a settlement date is given with.
_UNSETTLED = ("pending_settlement", "missing_in_ledger", "not_reconciled_yet")


def _view(line, entry, item, calendar, windows) -> PaymentView:
    if item is not None:
        outcome = item.outcome
        if entry is not None and outcome in ("pending_settlement", "missing_in_ledger"):
            # The settlement arrived after the item's run; the next run (queued by the import) judges the pair.
            outcome = "not_reconciled_yet"
    elif line is not None and line.channel == "cash":
        outcome = "cash"
    elif line is not None and entry is not None:
        outcome = "matched"
    elif line is not None and line.status != "success":
        outcome = "not_charged"
    else:
        outcome = "not_reconciled_yet"
    deadline = None
    if line is not None and line.channel != "cash" and entry is None and outcome in _UNSETTLED:
        _min, max_days = windows.get(line.channel, (1, 3))
        deadline = calendar.add_working_days(line.business_date, max_days)
    journal_due = None
    if outcome == "awaiting_journal":
        due = next((c["detail"].get("due") for c in item.causes if c.get("cause") == "journal_not_uploaded"), None)
        journal_due = datetime.fromisoformat(due) if due else None
    view = PaymentView(line, entry, item, outcome, deadline, journal_due)
    view.explanation = explain(view)
    return view


def _when(moment) -> str:
    return formats.date_format(moment.astimezone(SHANGHAI), "Y-m-d H:i") if moment else "?"


def explain(view: PaymentView) -> list[str]:
    """Sentences a counter clerk can read out to the citizen, in the active language."""
    line, entry, item = view.journal_line, view.ledger_entry, view.item
    said = []
    if line is not None:
        said.append(
            _(
                "The kiosk %(kiosk)s at %(site)s recorded a %(status)s payment of %(amount)s yuan by %(channel)s on %(when)s."
            )
            % {
                "kiosk": line.kiosk.serial,
                "site": line.kiosk.site.name,
                "status": line.get_status_display(),
                "amount": line.amount,
                "channel": line.get_channel_display(),
                "when": _when(line.occurred_at),
            }
        )
    if entry is not None:
        said.append(
            _("The channel received the payment (order %(ref)s) and it was settled to the ledger on %(when)s.")
            % {"ref": entry.channel_ref, "when": _when(entry.settled_at)}
        )
    outcome = view.outcome
    deadline = formats.date_format(view.deadline, "Y-m-d") if view.deadline else "?"
    journal_due = _when(view.journal_due) if view.journal_due else "?"
    messages = {
        "matched": _("The payment is reconciled: nothing more to do."),
        "cash": _("Cash payments are reconciled against the cash-box collection; the kiosk's record is the proof."),
        "not_charged": _("The kiosk recorded this payment as not completed, and no money reached the ledger."),
        "not_reconciled_yet": _("The payment has not been reconciled yet; it is checked as soon as the records arrive.")
        if entry is None
        else _("The settlement has arrived; the payment is checked against it in the next reconcile run."),
        "pending_settlement": _(
            "Bank settlement takes 1–3 working days and is expected by %(deadline)s. Please keep the payment voucher."
        )
        % {"deadline": deadline},
        "missing_in_ledger": _(
            "The settlement should have arrived by %(deadline)s and has not. Finance is checking it; please bring the "
            "payment voucher and the bank or payment app record that the money left the account."
        )
        % {"deadline": deadline},
        "missing_in_journal": _(
            "The channel has the payment but the kiosk's record is missing; finance is completing the record."
        ),
        "awaiting_journal": _(
            "The channel has the payment; the kiosk's journal of that day is due by %(due)s and the payment is "
            "checked as soon as it arrives. Nothing needs to be done yet."
        )
        % {"due": journal_due},
        "amount_mismatch": _("The amount settled differs from the amount recorded at the kiosk; finance is checking."),
        "fee_policy_mismatch": _(
            "The amount paid differs from the current fee; finance will contact you about the difference."
        ),
        "duplicate_charge": _("The same fee was charged twice; a refund of the extra payment is being handled."),
        "failed_but_settled": _(
            "The kiosk showed the payment as failed but the money was taken; it will be refunded or credited."
        ),
        "payer_mismatch": _("The payment is recorded under another application number; finance is correcting it."),
        "channel_not_accepted": _("This payment channel is not accepted for this fee; finance will contact you."),
        "proposed_match": _("The payment is being matched by hand; finance is checking it."),
    }
    said.append(messages.get(outcome, ""))
    if item is not None:
        if item.causes and outcome not in ("matched", "pending_settlement", "awaiting_journal"):
            said.append(_("Probable cause: %(cause)s") % {"cause": describe_cause(item.causes[0])})
        resolution = {
            "refund_requested": _("A refund has been requested."),
            "refunded": _("The refund has been made."),
            "manual_match": _("Finance matched the payment by hand."),
            "written_off": _("Finance closed the case."),
        }.get(item.resolution)
        if resolution:
            said.append(resolution)
    return [s for s in said if s]


# The fields a typing error is found in (causes.rank's input_error), as people call them.
_FIELDS = {
    "amount": gettext_lazy("the amount"),
    "payer_ref": gettext_lazy("the payer reference"),
    "channel_ref": gettext_lazy("the order number"),
}


def describe_cause(cause: dict) -> str:
    """causes.describe, with the codes its details carry (a kiosk status, a field, channels) put in words of the
    active language first, so a sentence never mixes in an internal code such as "failed" or "alipay"."""
    detail = dict(cause.get("detail") or {})
    if detail.get("status") in JournalLine.Status.values:
        detail["status"] = str(JournalLine.Status(detail["status"]).label)
    if detail.get("field") in _FIELDS:
        detail["field"] = str(_FIELDS[detail["field"]])
    if detail.get("channel") in Channel.values:
        detail["channel"] = str(Channel(detail["channel"]).label)
    if isinstance(detail.get("accepted"), list):
        detail["accepted"] = [str(Channel(c).label) if c in Channel.values else c for c in detail["accepted"]]
    return causes.describe({**cause, "detail": detail})
