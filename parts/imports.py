"""Import and export of the catalog and the stock (CSV or XLSX), with django-import-export and tablib.

An import is all or nothing: every row is checked and applied in one transaction, and one bad row rolls the whole
file back and is reported with its row number (the spreadsheet's, counting the header as row 1) and the reason.
The catalog is written through the catalog resource (full_clean on each part); the stock is an opening-balance
receipt per row through the ledger (parts.services.part_receive) — a stock import never edits a balance.

Files: UTF-8 (with or without BOM), GB18030 (what a Chinese Excel saves as CSV) or UTF-16 with a BOM; at most MAX_BYTES and MAX_ROWS.
NUL bytes and control characters in a cell are refused, like everywhere else."""

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime

import tablib
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets

from fleet.vocabulary import Component
from parts import selectors, services
from parts.models import Balance, Part

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# The columns of each file, in order (the headers an export writes and an import reads).
CATALOG_COLUMNS = (
    "part_number",
    "name",
    "component",
    "models_compatible",
    "unit",
    "expires",
    "reorder_point",
    "reorder_quantity",
    "active",
)
STOCK_COLUMNS = ("depot", "part_number", "lot_number", "expires_on", "quantity")


class ImportRefused(ValueError):
    """The file cannot be read, or rows are wrong: `errors` lists (row number or None, reason)."""

    def __init__(self, errors: list[tuple[int | None, str]]):
        super().__init__("; ".join(f"{row}: {reason}" for row, reason in errors))
        self.errors = errors


@dataclass
class ImportResult:
    rows: int
    created: int = 0
    updated: int = 0
    movements: list = field(default_factory=list)


# --- Reading a file ---------------------------------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode text": UTF-16 with its byte-order mark
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRefused([(None, _("The file is neither UTF-8 nor GB18030 text: save it as CSV UTF-8 or as XLSX."))])


def read_dataset(raw: bytes, filename: str, columns: tuple[str, ...]) -> tablib.Dataset:
    """The file's rows as a dataset with the expected headers, or ImportRefused saying why not."""
    if len(raw) > MAX_BYTES:
        raise ImportRefused([(None, _("The file is larger than 2 MB."))])
    if not raw.strip():
        raise ImportRefused([(None, _("The file is empty."))])
    name = (filename or "").lower()
    try:
        if name.endswith(".xlsx"):
            dataset = tablib.Dataset().load(io.BytesIO(raw), format="xlsx")
        elif name.endswith(".csv") or not name:
            text = _decode(raw)
            if "\x00" in text:
                raise ImportRefused([(None, _("The file contains NUL bytes: it is not a CSV file."))])
            dataset = tablib.Dataset().load(text, format="csv")
        else:
            raise ImportRefused([(None, _("Upload a .csv or .xlsx file."))])
    except ImportRefused:
        raise
    except Exception as error:  # tablib/openpyxl raise many kinds on a broken file
        raise ImportRefused([(None, _("The file cannot be read as CSV or XLSX."))]) from error
    headers = [str(h or "").strip() for h in (dataset.headers or [])]
    missing = [c for c in columns if c not in headers]
    if missing:
        raise ImportRefused([(1, _("Missing columns: %(columns)s") % {"columns": ", ".join(missing)})])
    if dataset.height > MAX_ROWS:
        raise ImportRefused([(None, _("At most %(n)d rows per file.") % {"n": MAX_ROWS})])
    dataset.headers = headers
    return dataset


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date()
    return str(value).strip()


def _row_problem(row: dict) -> str | None:
    for key, value in row.items():
        if isinstance(value, str) and CONTROL.search(value):
            return _("Column %(column)s contains control characters.") % {"column": key}
    return None


# --- The catalog ------------------------------------------------------------------------------------------------


class ComponentWidget(widgets.Widget):
    """A component by its code (receipt_printer) or its label in either language (凭条打印机)."""

    def clean(self, value, row=None, **kwargs):
        value = _cell(value)
        if not value:
            return ""
        for code, label in Component.choices:
            with translation.override("zh-hans"):
                chinese = str(label)
            with translation.override("en"):
                english = str(label)
            if value in (code, chinese, english):
                return code
        raise ValueError(_("Unknown component: %(value)s") % {"value": value[:40]})

    def render(self, value, obj=None, **kwargs):
        return value or ""


class ModelsWidget(widgets.Widget):
    """Compatible kiosk models separated by commas or 、; empty means every model."""

    def clean(self, value, row=None, **kwargs):
        return [m.strip() for m in re.split(r"[,，、;]", _cell(value)) if m.strip()][:50]

    def render(self, value, obj=None, **kwargs):
        return ",".join(value or [])


class StrictInteger(widgets.Widget):
    def __init__(self, minimum=0, maximum=100_000):
        self.minimum, self.maximum = minimum, maximum

    def clean(self, value, row=None, **kwargs):
        text = _cell(value)
        if not re.fullmatch(r"-?\d{1,7}", text) or not self.minimum <= int(text) <= self.maximum:
            raise ValueError(
                _("Give a whole number from %(low)d to %(high)d.") % {"low": self.minimum, "high": self.maximum}
            )
        return int(text)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class YesNo(widgets.Widget):
    TRUE, FALSE = {"1", "true", "yes", "y", "是", "有"}, {"0", "false", "no", "n", "否", "无", ""}

    def clean(self, value, row=None, **kwargs):
        text = _cell(value).lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValueError(_("Give yes or no (是/否)."))

    def render(self, value, obj=None, **kwargs):
        return "是" if value else "否"


class CatalogResource(resources.ModelResource):
    part_number = fields.Field(attribute="part_number", column_name="part_number")
    name = fields.Field(attribute="name", column_name="name")
    component = fields.Field(attribute="component", column_name="component", widget=ComponentWidget())
    models_compatible = fields.Field(
        attribute="models_compatible", column_name="models_compatible", widget=ModelsWidget()
    )
    unit = fields.Field(attribute="unit", column_name="unit")
    expires = fields.Field(attribute="expires", column_name="expires", widget=YesNo())
    reorder_point = fields.Field(attribute="reorder_point", column_name="reorder_point", widget=StrictInteger())
    reorder_quantity = fields.Field(
        attribute="reorder_quantity", column_name="reorder_quantity", widget=StrictInteger()
    )
    active = fields.Field(attribute="active", column_name="active", widget=YesNo())

    class Meta:
        model = Part
        import_id_fields = ("part_number",)
        fields = CATALOG_COLUMNS
        export_order = CATALOG_COLUMNS
        clean_model_instances = True
        skip_unchanged = True
        use_transactions = True

    def before_import_row(self, row, **kwargs):
        if problem := _row_problem(dict(row)):
            raise ValueError(problem)
        for key in ("part_number", "name", "unit"):
            row[key] = _cell(row.get(key))
        if not row["unit"]:
            row["unit"] = "个"
        if not row["part_number"] or not row["name"]:
            raise ValueError(_("A part needs a part number and a name."))


def _error_text(error) -> str:
    if isinstance(error, ValidationError):
        return "；".join(
            f"{k}: {'；'.join(v)}" if k != "__all__" else "；".join(v) for k, v in error.message_dict.items()
        )
    return str(error)


def catalog_import(*, raw: bytes, filename: str, actor) -> ImportResult:
    """Create or update parts from a catalog file, all or nothing. Technical support only."""
    if not (actor.has_perm("parts.add_part") and actor.has_perm("parts.change_part")):
        raise PermissionDenied(_("Only technical support keeps the catalog."))
    dataset = read_dataset(raw, filename, CATALOG_COLUMNS)
    resource = CatalogResource()
    with transaction.atomic():
        result = resource.import_data(dataset, dry_run=False, raise_errors=False, use_transactions=False)
        errors = [(number + 1, _error_text(e.error)) for number, row_errors in result.row_errors() for e in row_errors]
        errors += [(invalid.number + 1, _error_text(invalid.error)) for invalid in result.invalid_rows]
        errors += [(None, _error_text(e.error)) for e in result.base_errors]
        if errors:
            transaction.set_rollback(True)
            raise ImportRefused(sorted(errors, key=lambda e: e[0] or 0))
    totals = result.totals
    return ImportResult(rows=dataset.height, created=totals.get("new", 0), updated=totals.get("update", 0))


def catalog_export(parts=None) -> tablib.Dataset:
    return CatalogResource().export(queryset=parts if parts is not None else Part.objects.order_by("part_number"))


# --- Stock ------------------------------------------------------------------------------------------------------


def _date(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _cell(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text.replace("/", "-"))
    except ValueError as error:
        raise ValueError(_("Give the expiry date as YYYY-MM-DD.")) from error


def _column(label: str, clean, value):
    """Clean a cell, naming its column in the reason when it is refused."""
    try:
        return clean(value)
    except ValueError as error:
        raise ValueError(f"{label}：{error}") from error


def stock_import(*, raw: bytes, filename: str, actor) -> ImportResult:
    """Opening balances: each row a receipt of a lot into a depot through the ledger, all or nothing."""
    dataset = read_dataset(raw, filename, STOCK_COLUMNS)
    depots = {d.code: d for d in selectors.depots_for_user(actor)}
    parts = {p.part_number: p for p in Part.objects.filter(active=True)}
    errors, movements = [], []
    quantity = StrictInteger(minimum=1)
    with transaction.atomic():
        for index, row in enumerate(dataset.dict, start=2):
            try:
                if problem := _row_problem(row):
                    raise ValueError(problem)
                depot, part = depots.get(_cell(row["depot"])), parts.get(_cell(row["part_number"]))
                if depot is None:
                    raise ValueError(_("No such depot in your regions: %(code)s") % {"code": _cell(row["depot"])[:40]})
                if part is None:
                    raise ValueError(_("No such part in the catalog: %(n)s") % {"n": _cell(row["part_number"])[:40]})
                with transaction.atomic():
                    movements.append(
                        services.part_receive(
                            part=part,
                            depot=depot,
                            quantity=_column(_("Quantity"), quantity.clean, row["quantity"]),
                            lot_number=_cell(row["lot_number"]),
                            expires_on=_column(_("Expires on"), _date, row["expires_on"]),
                            actor=actor,
                            reason=_("Opening balance (import)"),
                        )
                    )
            except (ValueError, ValidationError, PermissionDenied) as error:
                errors.append((index, _error_text(error) if isinstance(error, ValidationError) else str(error)))
        if errors:
            transaction.set_rollback(True)
            raise ImportRefused(errors)
    return ImportResult(rows=dataset.height, created=len(movements), movements=movements)


def stock_export(user) -> tablib.Dataset:
    """The user's stock lot by lot, in the import's columns (so an export is a valid opening-balance file)."""
    dataset = tablib.Dataset(headers=[*STOCK_COLUMNS, "part_name", "depot_name"])
    balances = (
        Balance.objects.filter(depot__in=selectors.depots_for_user(user), quantity__gt=0)
        .select_related("depot", "lot__part")
        .order_by("depot__code", "lot__part__part_number", "lot__expires_on", "lot_id")
    )
    for b in balances:
        dataset.append(
            [
                b.depot.code,
                b.lot.part.part_number,
                b.lot.lot_number,
                b.lot.expires_on.isoformat() if b.lot.expires_on else "",
                b.quantity,
                b.lot.part.name,
                b.depot.name,
            ]
        )
    return dataset
