"""Fills the database the way a Django team's production one looks: soft-deleted users,
deposits Django recorded as 'success', the seed's transfers, pending entries, payments with
nested documents (a `discount` object, not a number), articles. Deterministic for a seed."""
import random
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from myapp.bank import transfer_funds
from myapp.models import Account, Article, Payment, Transaction, User


class Command(BaseCommand):
    help = "Fill the seed's tables with a realistic, deterministic dataset."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=100)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        now = timezone.now()
        with transaction.atomic():
            users = User.objects.bulk_create([
                User(email=f"user{i}@example.com", name=f"Ünïcode User {i}")
                for i in range(options["users"])
            ])
            for i, user in enumerate(users):
                if i % 10 == 9:
                    user.deleted_at = now - timedelta(days=i)
                    user.save(update_fields=["deleted_at"])
            accounts = Account.objects.bulk_create([
                Account(user=user, currency=rng.choice(["USD", "EUR"]),
                        status=rng.choice(["active", "active", "vip", "trial"]))
                for user in users for _ in range(rng.randint(1, 2))
            ])
            for account in accounts:
                amount = Decimal(rng.randint(100, 500000)) / 100
                account.balance += amount
                account.save(update_fields=["balance"])
                Transaction.objects.create(
                    to_account=account, amount=amount, type="deposit", status="success",
                    metadata={"channel": rng.choice(["web", "ios"]),
                              "device": {"os": rng.choice(["ios", "android"])}},
                )
                Transaction.objects.create(
                    to_account=account, amount=Decimal("1.00"), type="deposit",
                    status="pending", metadata={},
                )
        for _ in range(len(accounts)):
            a, b = rng.sample(accounts, 2)
            if a.currency != b.currency:
                continue
            try:
                transfer_funds(a.id, b.id, Decimal(rng.randint(1, 5000)) / 100)
            except ValueError:
                pass
        Payment.objects.bulk_create([
            Payment(data={
                "method": rng.choice(["credit_card", "paypal"]),
                "last4": f"{rng.randint(0, 9999):04}",
                "brand": rng.choice(["Visa", "Mastercard"]),
                "amount": rng.randint(1, 500),
                "shipping": {"country": rng.choice(["US", "IS", "DE"])},
                **({"discount": {"code": f"C{i}", "percent": 10}} if i % 5 == 0 else {}),
            })
            for i in range(100)
        ])
        Article.objects.bulk_create([
            Article(title=f"Postgres performance {i}", content="Indexes and query plans " * (i + 1))
            for i in range(20)
        ])
        self.stdout.write(f"filled {len(users)} users, {len(accounts)} accounts")
