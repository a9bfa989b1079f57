"""Work-order tests: a hall that is always open, a kiosk that has reported its modules, an incident on it, and the
people of the flow (a dispatcher, a technician covering the region, support guiding them)."""

import io

import pytest
from django.utils import timezone
from PIL import Image

from incidents import services as incident_services
from incidents.services import ManualReport
from tests.factories import KioskFactory, SiteFactory, UserFactory
from tests.incidents.conftest import ALWAYS_OPEN, beat, policies  # noqa: F401  (fixture re-exported)
from workorders import services
from workorders.models import TechnicianProfile


@pytest.fixture
def hall(region):
    return SiteFactory(
        region=region,
        code="hall-a",
        name="黄浦区政务服务中心",
        address="上海市黄浦区人民路 1 号",
        latitude="31.230000",
        longitude="121.470000",
        opening_hours=ALWAYS_OPEN,
        counter_location="一楼3号综合窗口",
        duty_contact_name="周敏",
        duty_contact_phone="021-63210000",
    )


@pytest.fixture
def broken_kiosk(hall):
    kiosk = KioskFactory(site=hall, serial="ZW2500001", model="ZW-3000", location="一楼大厅东侧")
    beat(kiosk, receipt_printer="hardware_error", qr_scanner="ok")
    kiosk.refresh_from_db()
    return kiosk


@pytest.fixture
def dispatcher(region):
    return UserFactory(
        username="dispatcher", role="operations_manager", regions=[region], first_name="敏", last_name="王"
    )


@pytest.fixture
def technician(region):
    user = UserFactory(username="tech", role="field_technician", regions=[region], first_name="强", last_name="李")
    TechnicianProfile.objects.create(
        user=user,
        models_trained=["ZW-3000"],
        base_name="黄浦站",
        base_latitude="31.240000",
        base_longitude="121.480000",
    )
    return user


@pytest.fixture
def other_technician(region):
    return UserFactory(username="tech2", role="field_technician", regions=[region], first_name="军", last_name="赵")


@pytest.fixture
def guide(region):
    return UserFactory(username="guide", role="technical_support", regions=[region], first_name="磊", last_name="陈")


@pytest.fixture
def incident(policies, broken_kiosk, dispatcher):  # noqa: F811
    incident, _created = incident_services.incident_report(
        report=ManualReport(
            kiosk=broken_kiosk,
            fault_kind="module_failure",
            symptom="打印机卡纸，无法出凭条",
            observed_at=timezone.now(),
        ),
        actor=dispatcher,
    )
    return incident


@pytest.fixture
def order(incident, dispatcher, technician):
    return services.work_order_create(incident=incident, actor=dispatcher, assignee=technician)


def jpeg(width=2400, height=1800, *, gps=True) -> bytes:
    """A camera-like JPEG, with a GPS position in its EXIF when `gps`."""
    image = Image.new("RGB", (width, height), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if gps:
        exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


PNG_SIGNATURE = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
