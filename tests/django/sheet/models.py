"""The cheat sheet's models exactly as it gives them, and nothing more.

`Payment` is the sheet's one field; `Article` has only the `title` and `content` that its
`SearchVector('title', 'content')` reads (the sheet never defines the model: the `max_length` is
the one ledger's `articles.title` has). No `created_at` on either: `ledger adopt` adds it.
The tests swap this app in for `myapp` (settings' INSTALLED_APPS) under the label `sheet`.
"""
import uuid

from django.db import models


class User(models.Model):
    id         = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email      = models.EmailField(unique=True)
    name       = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)  # soft delete

    class Meta:
        db_table = 'users'
        indexes  = [
            models.Index(fields=['email']),
        ]


class Account(models.Model):
    id       = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user     = models.ForeignKey(User, on_delete=models.PROTECT, related_name='accounts')
    balance  = models.DecimalField(max_digits=15, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default='USD')
    status   = models.CharField(max_length=20, default='active')

    class Meta:
        db_table = 'accounts'
        constraints = [
            models.CheckConstraint(
                check=models.Q(balance__gte=0),
                name='balance_non_negative'
            )
        ]


class Transaction(models.Model):
    TYPES = [('transfer', 'Transfer'), ('deposit', 'Deposit'), ('withdrawal', 'Withdrawal')]

    id              = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    from_account    = models.ForeignKey(Account, on_delete=models.PROTECT, related_name='sent',     null=True)
    to_account      = models.ForeignKey(Account, on_delete=models.PROTECT, related_name='received', null=True)
    amount          = models.DecimalField(max_digits=15, decimal_places=2)
    type            = models.CharField(max_length=20, choices=TYPES)
    status          = models.CharField(max_length=20, default='pending')
    metadata        = models.JSONField(default=dict, blank=True)  # JSONB in Postgres
    created_at      = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = 'transactions'
        indexes  = [
            models.Index(fields=['from_account', 'created_at']),
            models.Index(fields=['to_account',   'created_at']),
        ]
        constraints = [
            models.CheckConstraint(
                check=models.Q(amount__gt=0),
                name='positive_amount'
            )
        ]


class Payment(models.Model):
    data = models.JSONField(default=dict)


class Article(models.Model):
    title   = models.CharField(max_length=200)
    content = models.TextField()
