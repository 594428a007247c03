"""Chain the events that existed before the hash chain (0002).

Existing events are chained in id order with the audit key configured now (HEARTH_AUDIT_KEY or
HEARTH_AUDIT_KEY_FILE): the chain vouches for them from this migration on, not before.
"""

from django.db import migrations


def chain_existing(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    db = schema_editor.connection.alias
    events = AuditEvent.objects.using(db).order_by("id")
    if not events.exists():
        return
    from audit import chain

    key = chain.audit_key()
    position, prev_hash, batch = 0, chain.GENESIS, []
    for event in events.iterator(chunk_size=2000):
        position += 1
        event.position = position
        event.prev_hash = prev_hash
        event.hash = chain.link(chain.event_fields(event), prev_hash, key)
        prev_hash = event.hash
        batch.append(event)
        if len(batch) >= 2000:
            AuditEvent.objects.using(db).bulk_update(batch, ["position", "prev_hash", "hash"])
            batch = []
    if batch:
        AuditEvent.objects.using(db).bulk_update(batch, ["position", "prev_hash", "hash"])
    AuditChainHead.objects.using(db).create(pk=1, position=position, hash=prev_hash)




class Migration(migrations.Migration):
    dependencies = [("audit", "0002_hash_chain")]

    operations = [migrations.RunPython(chain_existing, migrations.RunPython.noop)]
