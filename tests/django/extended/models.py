"""The cheat sheet's models as a real app extends them: fields of its own on every money table.

Nullable fields and fields with a database default (Django 5's `db_default`) are fine for ledger,
whose inserts do not name them. `User.referral_code` and `Account.branch` are `NOT NULL` with a
default that lives in Python only (`default=`), so every ledger insert into their tables would
fail: `ledger adopt` refuses them, naming each and the two ways out. The tests install this app
under the label `extended` and write its migrations with the release's own `makemigrations`.
"""
import uuid

from django.db import models
from django.db.models.functions import Now


class User(models.Model):
    id            = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email         = models.EmailField(unique=True)
    name          = models.CharField(max_length=100)
    created_at    = models.DateTimeField(auto_now_add=True)
    deleted_at    = models.DateTimeField(null=True, blank=True)
    nickname      = models.CharField(max_length=50, null=True, blank=True)
    tier          = models.CharField(max_length=10, db_default='basic')
    referral_code = models.CharField(max_length=20, default='')

    class Meta:
        db_table = 'users'


class Account(models.Model):
    id        = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user      = models.ForeignKey(User, on_delete=models.PROTECT, related_name='accounts')
    balance   = models.DecimalField(max_digits=15, decimal_places=2, default=0)
    currency  = models.CharField(max_length=3, default='USD')
    status    = models.CharField(max_length=20, default='active')
    opened_at = models.DateTimeField(db_default=Now())
    branch    = models.CharField(max_length=10, default='main')

    class Meta:
        db_table = 'accounts'
        constraints = [
            models.CheckConstraint(condition=models.Q(balance__gte=0), name='balance_non_negative'),
        ]


class Transaction(models.Model):
    TYPES = [('transfer', 'Transfer'), ('deposit', 'Deposit'), ('withdrawal', 'Withdrawal')]

    id           = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    from_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name='sent', null=True)
    to_account   = models.ForeignKey(Account, on_delete=models.PROTECT, related_name='received', null=True)
    amount       = models.DecimalField(max_digits=15, decimal_places=2)
    type         = models.CharField(max_length=20, choices=TYPES)
    status       = models.CharField(max_length=20, default='pending')
    metadata     = models.JSONField(default=dict, blank=True)
    created_at   = models.DateTimeField(auto_now_add=True)
    channel      = models.CharField(max_length=10, null=True)

    class Meta:
        db_table = 'transactions'
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name='positive_amount'),
        ]


class Payment(models.Model):
    source = models.CharField(max_length=20, db_default='web')
    data = models.JSONField(default=dict)


class Article(models.Model):
    title   = models.CharField(max_length=200)
    content = models.TextField()
