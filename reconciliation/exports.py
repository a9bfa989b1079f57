"""The daily report as CSV and XLSX downloads."""

import csv
import io

from openpyxl import Workbook
from openpyxl.styles import Font


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


def report_csv(report: dict) -> bytes:
    """One CSV with a blank line between sections (UTF-8 with BOM so spreadsheet programs read Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out)
    for name, rows in report_rows(report).items():
        writer.writerow([f"# {name}"])
        writer.writerows(rows)
        writer.writerow([])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def report_xlsx(report: dict) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in report_rows(report).items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append([float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, int) else v for v in row])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
