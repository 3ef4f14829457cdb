"""Prints, as one JSON object, what Django's ORM reads: the facts the adoption tests compare
with ledger's answers, and any rows named on the command line."""
import json

from django.core.management.base import BaseCommand
from django.db.models import Count, Sum

from myapp.models import Account, Article, Payment, Transaction, User


class Command(BaseCommand):
    help = "Print what Django's ORM reads, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--transaction", action="append", default=[])
        parser.add_argument("--payment", action="append", default=[], type=int)
        parser.add_argument("--user-email", action="append", default=[])

    def handle(self, *args, **options):
        facts = {
            "users": User.objects.count(),
            "live_users": User.objects.filter(deleted_at__isnull=True).count(),
            "accounts": Account.objects.count(),
            "balances": str(Account.objects.aggregate(t=Sum("balance"))["t"]),
            "transactions": Transaction.objects.count(),
            "success_total": str(
                Transaction.objects.filter(status="success").aggregate(total=Sum("amount"))["total"]
            ),
            "statuses": dict(
                Transaction.objects.values_list("status").annotate(n=Count("id")).order_by()
            ),
            "payments": Payment.objects.count(),
            "with_discount": Payment.objects.filter(data__has_key="discount").count(),
            "visa": Payment.objects.filter(data__brand="Visa").count(),
            "articles": Article.objects.count(),
            "transaction_rows": [
                {
                    "type": t.type, "status": t.status, "amount": str(t.amount),
                    "from": str(t.from_account_id), "to": str(t.to_account_id),
                    "metadata": t.metadata,
                }
                for t in Transaction.objects.filter(id__in=options["transaction"])
            ],
            "payment_rows": [
                p.data for p in Payment.objects.filter(id__in=options["payment"]).order_by("id")
            ],
            "user_rows": [
                {"email": u.email, "name": u.name}
                for u in User.objects.filter(email__in=options["user_email"]).order_by("email")
            ],
        }
        self.stdout.write(json.dumps(facts, sort_keys=True))
