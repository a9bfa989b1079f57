"""Give every demo region its online platform, hotline and fee list, so that every demo hall has a notice and a
public page. Idempotent, and leaves a region set already as it is: run by `make setup` after seed_incidents_demo."""

from django.core.management.base import BaseCommand

from accounts.models import Region
from guidance import services

PLATFORM_NAME = "上海市“一网通办”"
PLATFORM_URL = "https://zwdt.sh.gov.cn"
HOTLINE = "12345"
FEES = ["居民身份证工本费", "户口簿工本费", "出入境证件费", "临时身份证明工本费", "居住证工本费"]


class Command(BaseCommand):
    help = "Set the demo regions' online platform, hotline and fees for citizens' notices and public pages."

    def handle(self, *args, **options):
        # Regions set already keep what people changed in the admin.
        regions = list(Region.objects.filter(guidance__isnull=True))
        for region in regions:
            services.region_guidance_set(
                region=region, platform_name=PLATFORM_NAME, platform_url=PLATFORM_URL, hotline=HOTLINE, fees=FEES
            )
        self.stdout.write(f"Citizen guidance set for {len(regions)} more regions.")
