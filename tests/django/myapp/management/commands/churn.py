"""Moves money with the seed's transfer_funds, in a loop, until a stop file appears: Django's
side of a live database while ledger adopts it. Prints what happened as JSON."""
import json
import random
import time
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from myapp.bank import transfer_funds
from myapp.models import Account


class Command(BaseCommand):
    help = "Run transfer_funds until --stop-file exists (at most --seconds)."

    def add_arguments(self, parser):
        parser.add_argument("--stop-file", required=True)
        parser.add_argument("--seconds", type=float, default=60)
        parser.add_argument("--seed", type=int, default=11)
        # A slow request: the sender's row locked, some work, then the seed's transfer. It widens
        # the window in which Django holds `accounts` and has yet to write `transactions`.
        parser.add_argument("--think-ms", type=float, default=0)

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        accounts = list(Account.objects.filter(currency="USD").values_list("id", flat=True))
        stop = Path(options["stop_file"])
        deadline = time.monotonic() + options["seconds"]
        done = {"ok": 0, "insufficient": 0, "errors": []}
        while not stop.exists() and time.monotonic() < deadline:
            a, b = rng.sample(accounts, 2)
            try:
                with transaction.atomic():
                    if options["think_ms"]:
                        Account.objects.select_for_update().get(id=a)
                        time.sleep(options["think_ms"] / 1000)
                    transfer_funds(a, b, Decimal(rng.randint(1, 500)) / 100)
                done["ok"] += 1
            except ValueError:
                done["insufficient"] += 1
            except Exception as error:  # every other failure is reported, not hidden
                done["errors"].append(f"{type(error).__name__}: {error}")
        self.stdout.write(json.dumps(done))
