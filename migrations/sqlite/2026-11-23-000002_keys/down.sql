DROP TABLE signing_keys;
DROP TABLE data_keys;
DROP TABLE master_key_checks;
