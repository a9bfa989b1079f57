"""The daily report as CSV and XLSX downloads.

Two readings of the same figures: `report_rows` is the program's (English column names, stored codes such as
missing_in_ledger or wechat), which the API returns and exports, and `labelled_rows` is a person's (headers, sheet
names, outcomes and channels in the reader's language, the code kept in a last column for filtering and for
matching other systems), which the console downloads."""

import csv
import io

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from reconciliation.models import Channel, Outcome


def report_rows(report: dict) -> dict[str, list[list]]:
    """The report as sheets of rows: header first."""
    outcomes = [["outcome", "count", "amount"]] + [
        [outcome, count, report["amounts"].get(outcome, "0")] for outcome, count in report["outcomes"].items()
    ]
    channels = [["channel", "lines", "amount", "discrepancies", "discrepancy_amount"]] + [
        [channel, v["lines"], v["amount"], v.get("discrepancies", 0), v.get("discrepancy_amount", 0)]
        for channel, v in report["per_channel"].items()
    ]
    kiosks = [["kiosk", "site", "lines", "amount", "discrepancies", "discrepancy_amount"]] + [
        [serial, v["site"], v["lines"], v["amount"], v.get("discrepancies", 0), v.get("discrepancy_amount", 0)]
        for serial, v in report["per_kiosk"].items()
    ]
    rate = report["match_rate"]
    summary = [["business_date", "match_rate"], [report["business_date"].isoformat(), "" if rate is None else rate]]
    return {"summary": summary, "outcomes": outcomes, "channels": channels, "kiosks": kiosks}


def _label(choices, code: str) -> str:
    return str(choices(code).label) if code in choices.values else code


def labelled_rows(report: dict) -> dict[str, list[list]]:
    """report_rows for people, in the active language: 已缴费未对账 and 微信支付 instead of the codes, which stay in
    the last column; outcomes in the report page's order."""
    known = [o for o in Outcome.values if o in report["outcomes"]]
    others = [o for o in report["outcomes"] if o not in Outcome.values]
    outcomes = [[_("Outcome"), _("Count"), _("Amount (yuan)"), _("Code")]] + [
        [_label(Outcome, o), report["outcomes"][o], report["amounts"].get(o, "0"), o] for o in known + others
    ]
    channels = [
        [_("Channel"), _("Payments"), _("Amount (yuan)"), _("Discrepancies"), _("Discrepancy amount (yuan)"), _("Code")]
    ] + [
        [
            _label(Channel, channel),
            v["lines"],
            v["amount"],
            v.get("discrepancies", 0),
            v.get("discrepancy_amount", 0),
            channel,
        ]
        for channel, v in report["per_channel"].items()
    ]
    kiosks = [
        [
            _("Kiosk"),
            _("Service hall"),
            _("Payments"),
            _("Amount (yuan)"),
            _("Discrepancies"),
            _("Discrepancy amount (yuan)"),
        ]
    ] + [
        [serial, v["site"], v["lines"], v["amount"], v.get("discrepancies", 0), v.get("discrepancy_amount", 0)]
        for serial, v in report["per_kiosk"].items()
    ]
    rate = report["match_rate"]
    summary = [
        [_("Business date"), _("Match rate")],
        [report["business_date"].isoformat(), "" if rate is None else rate],
    ]
    return {_("Summary"): summary, _("By outcome"): outcomes, _("By channel"): channels, _("By kiosk"): kiosks}


def report_csv(report: dict, *, labelled: bool = False) -> bytes:
    """One CSV with a blank line between sections (UTF-8 with BOM so spreadsheet programs read Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out)
    for name, rows in (labelled_rows if labelled else report_rows)(report).items():
        writer.writerow([f"# {name}"])
        writer.writerows(rows)
        writer.writerow([])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def report_xlsx(report: dict, *, labelled: bool = False) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in (labelled_rows if labelled else report_rows)(report).items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append([float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, int) else v for v in row])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
