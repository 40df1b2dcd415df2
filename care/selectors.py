"""Reads of care rows (docs/care.md). Never writes."""

from __future__ import annotations

import uuid

from care.models import Block, CrisisFlag, CrisisStatus


def block_list_mitra_ids(*, customer_id: uuid.UUID) -> set[uuid.UUID]:
    return set(Block.objects.filter(customer_id=customer_id).values_list("mitra_id", flat=True))


def block_exists(*, customer_id: uuid.UUID, mitra_id: uuid.UUID) -> bool:
    return Block.objects.filter(customer_id=customer_id, mitra_id=mitra_id).exists()


def crisis_flag_is_open(*, session_id: uuid.UUID) -> bool:
    return CrisisFlag.objects.filter(session_id=session_id, status=CrisisStatus.OPEN).exists()
