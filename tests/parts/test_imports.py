"""Import and export of the catalog and the stock: all rows or none, each refused row named by its number and
reason; the stock is received through the ledger; CSV in UTF-8 or GB18030 and XLSX are read, anything else refused."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from parts import imports, services
from parts.models import Balance, Movement, Part

pytestmark = pytest.mark.django_db

CATALOG_HEAD = "part_number,name,component,models_compatible,unit,expires,reorder_point,reorder_quantity,active\n"
STOCK_HEAD = "depot,part_number,lot_number,expires_on,quantity\n"


def test_a_catalog_file_creates_and_updates_parts(keeper, printer):
    raw = (
        CATALOG_HEAD
        + "PRN-80T,80毫米热敏打印机芯,receipt_printer,,台,否,3,6,是\n"
        + 'CRD-EMV,EMV 读卡器,刷卡器,"KX-1,KX-2",个,否,2,4,是\n'
    ).encode()

    result = imports.catalog_import(raw=raw, filename="catalog.csv", actor=keeper)

    assert (result.created, result.updated) == (1, 1)
    assert Part.objects.get(part_number="PRN-80T").reorder_point == 3
    card = Part.objects.get(part_number="CRD-EMV")
    assert (card.component, card.models_compatible) == ("card_reader", ["KX-1", "KX-2"])


def test_one_bad_catalog_row_leaves_nothing_imported_and_names_its_row(keeper):
    raw = (
        CATALOG_HEAD
        + "OK-1,好的备件,,,个,否,1,1,是\n"
        + "BAD-2,坏的备件,,,个,否,-5,1,是\n"
        + "BAD-3,,,,个,否,1,1,是\n"
        + "BAD-4,怪部件,warp_drive,,个,否,1,1,是\n"
    ).encode()

    with pytest.raises(imports.ImportRefused) as refused:
        imports.catalog_import(raw=raw, filename="catalog.csv", actor=keeper)

    assert [row for row, _reason in refused.value.errors] == [3, 4, 5]
    assert not Part.objects.exists()


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-16"])
def test_a_csv_from_excel_is_read_in_gb18030_utf8_or_utf16(keeper, encoding):
    raw = (CATALOG_HEAD + "PSU-12,电源适配器,,,个,否,2,4,是\n").encode(encoding)

    imports.catalog_import(raw=raw, filename="目录.csv", actor=keeper)

    assert Part.objects.get().name == "电源适配器"


@pytest.mark.parametrize(
    ("raw", "filename", "says"),
    [
        (b"part_number,name\x00\n", "x.csv", "NUL"),
        (b"\xff\xfe\x00\x00garbage\x81", "x.csv", ""),
        (b"just,some,columns\n1,2,3\n", "x.csv", "part_number"),
        (b"", "x.csv", ""),
        (b"PK\x03\x04broken", "x.xlsx", ""),
        (b"<html>", "x.pdf", ""),
    ],
)
def test_files_that_are_not_a_catalog_are_refused_whole(keeper, raw, filename, says):
    with pytest.raises(imports.ImportRefused) as refused:
        imports.catalog_import(raw=raw, filename=filename, actor=keeper)

    assert says in str(refused.value)
    assert not Part.objects.exists()


def test_a_stock_file_is_received_through_the_ledger_as_opening_balances(keeper, store, printer, paper):
    raw = (STOCK_HEAD + "hp-store,PRN-80T,L1,,4\nhp-store,PAP-80,P1,2099-01-31,30\n").encode()

    result = imports.stock_import(raw=raw, filename="stock.csv", actor=keeper)

    assert result.created == 2
    assert sorted(Movement.objects.values_list("kind", flat=True)) == ["receive", "receive"]
    assert Balance.objects.get(lot__lot_number="P1").quantity == 30


def test_a_bad_stock_row_rolls_back_the_good_ones(keeper, store, printer, paper):
    raw = (
        STOCK_HEAD
        + "hp-store,PRN-80T,L1,,4\n"
        + "hp-store,PAP-80,P1,,30\n"  # paper expires: no date
        + "nowhere,PRN-80T,L2,,1\n"
        + "hp-store,PRN-80T,L3,,99999999999\n"
        + "hp-store,PRN-80T,L4,,-1\n"
    ).encode()

    with pytest.raises(imports.ImportRefused) as refused:
        imports.stock_import(raw=raw, filename="stock.csv", actor=keeper)

    assert [row for row, _reason in refused.value.errors] == [3, 4, 5, 6]
    assert not Movement.objects.exists() and not Balance.objects.exists()


def test_the_stock_export_is_an_xlsx_the_import_reads_back(client, keeper, store, printer):
    services.part_receive(part=printer, depot=store, quantity=3, lot_number="L1", actor=keeper)
    client.force_login(keeper)

    response = client.get(reverse("parts:export", args=["stock", "xlsx"]))

    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("depot", "part_number", "lot_number", "expires_on", "quantity")
    assert rows[1][:5] == ("hp-store", "PRN-80T", "L1", None, 3) or rows[1][:5] == ("hp-store", "PRN-80T", "L1", "", 3)


def test_an_xlsx_catalog_imports_on_the_console_and_a_bad_one_is_a_400_listing_rows(client, keeper):
    book = Workbook()
    sheet = book.active
    sheet.append(CATALOG_HEAD.strip().split(","))
    sheet.append(["MB-X86", "主板", "mainboard", "", "块", "否", 1, 2, "是"])
    buffer = io.BytesIO()
    book.save(buffer)
    client.force_login(keeper)

    ok = client.post(
        reverse("parts:import"),
        {"what": "catalog", "file": SimpleUploadedFile("catalog.xlsx", buffer.getvalue())},
    )
    bad = client.post(
        reverse("parts:import"),
        {"what": "stock", "file": SimpleUploadedFile("stock.csv", (STOCK_HEAD + "x,MB-X86,L,,1\n").encode())},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert ok.status_code == 302 and Part.objects.filter(part_number="MB-X86").exists()
    assert bad.status_code == 400
    assert "import-errors" in bad.content.decode()


def test_a_technician_cannot_import_the_catalog(client, technician):
    client.force_login(technician)
    response = client.post(
        reverse("parts:import"),
        {"what": "catalog", "file": SimpleUploadedFile("c.csv", (CATALOG_HEAD + "A,B,,,个,否,1,1,是\n").encode())},
    )
    assert response.status_code == 403
    assert not Part.objects.exists()
