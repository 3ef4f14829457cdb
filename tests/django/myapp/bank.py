"""The seed's money path, as the cheat sheet writes it."""
from decimal import Decimal

from django.db import transaction

from myapp.models import Account, Transaction


def transfer_funds(from_account_id, to_account_id, amount):
    with transaction.atomic():
        # Lock both rows for update
        from_acc = Account.objects.select_for_update().get(id=from_account_id)
        to_acc   = Account.objects.select_for_update().get(id=to_account_id)

        if from_acc.balance < amount:
            raise ValueError('Insufficient funds')

        from_acc.balance -= Decimal(amount)
        to_acc.balance   += Decimal(amount)

        from_acc.save()
        to_acc.save()

        Transaction.objects.create(
            from_account=from_acc,
            to_account=to_acc,
            amount=amount,
            type='transfer',
            status='completed',
        )
