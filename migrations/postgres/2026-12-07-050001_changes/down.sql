DROP TRIGGER master_key_checks_changed ON master_key_checks;
DROP TRIGGER data_keys_changed ON data_keys;
DROP TRIGGER signing_keys_changed ON signing_keys;
DROP TRIGGER clients_changed ON clients;
DROP TRIGGER tenants_changed ON tenants;
DROP FUNCTION latchkey_note_change();
DROP TABLE changes;
