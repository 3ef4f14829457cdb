"""Times one of the cheat sheet's operations, as its own Django code does it, and prints the
seconds as JSON: the Django side of `cargo bench --bench django`. Django's start-up is outside
the timed part."""
import json
import threading
import time
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import connection

from myapp.bank import transfer_funds
from myapp.models import Transaction, User


def driver():
    """The driver Django runs on: psycopg 3 when it is installed, else psycopg2."""
    from django.db.backends.postgresql import psycopg_any

    return "psycopg" if psycopg_any.is_psycopg3 else "psycopg2"


class Command(BaseCommand):
    help = (
        "Time bulk_create, .iterator(chunk_size=1000) read whole or left after --n rows, "
        "or transfer_funds."
    )

    def add_arguments(self, parser):
        parser.add_argument("op", choices=["bulk_create", "iterate", "drop", "transfers"])
        parser.add_argument("--n", type=int, default=10_000)
        parser.add_argument("--round", type=int, default=0)
        parser.add_argument("--clients", type=int, default=4)
        parser.add_argument("--accounts", nargs="*", default=[])

    def handle(self, *args, **options):
        op, n = options["op"], options["n"]
        if op == "bulk_create":
            users = [
                User(email=f"u{options['round']}-{i}@django.bench", name=f"Bench User {i}")
                for i in range(n)
            ]
            start = time.perf_counter()
            User.objects.bulk_create(users)
            seconds = time.perf_counter() - start
            result = {"seconds": seconds, "rows": n}
        elif op == "iterate":
            start = time.perf_counter()
            rows = 0
            total = Decimal(0)
            for t in Transaction.objects.iterator(chunk_size=1000):
                rows += 1
                total += t.amount
            seconds = time.perf_counter() - start
            result = {"seconds": seconds, "rows": rows, "total": str(total), "driver": driver()}
        elif op == "drop":
            # The first n rows, then `break`; closing the iterator closes its server-side
            # cursor. Then the next query on the same connection.
            start = time.perf_counter()
            rows = Transaction.objects.iterator(chunk_size=1000)
            for i, _ in enumerate(rows, start=1):
                if i >= n:
                    break
            first = time.perf_counter() - start
            start = time.perf_counter()
            rows.close()
            with connection.cursor() as cursor:
                cursor.execute("select 1")
                cursor.fetchone()
            next_query = time.perf_counter() - start
            result = {"first": first, "next_query": next_query, "driver": driver()}
        else:
            accounts = options["accounts"]
            per_client = n // options["clients"]
            failed = []

            def client(k):
                # The seed's function locks the sender, then the receiver: two clients moving
                # money both ways between two accounts deadlock, and PostgreSQL aborts one.
                # Each failure is counted and the client goes on, as a web request would.
                for i in range(per_client):
                    a = accounts[(k + i) % len(accounts)]
                    b = accounts[(k + 3 * i + 1) % len(accounts)]
                    if a == b:
                        b = accounts[(accounts.index(a) + 1) % len(accounts)]
                    try:
                        transfer_funds(a, b, Decimal("0.01"))
                    except Exception as error:
                        failed.append(type(error).__name__)
                connection.close()

            threads = [threading.Thread(target=client, args=(k,)) for k in range(options["clients"])]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - start
            attempted = per_client * options["clients"]
            result = {
                "seconds": seconds,
                "transfers": attempted - len(failed),
                "failed": len(failed),
                "failures": sorted(set(failed)),
            }
        self.stdout.write(json.dumps(result))
