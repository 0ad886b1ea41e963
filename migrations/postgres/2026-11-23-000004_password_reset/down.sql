DROP TABLE mail_outbox;
DROP TABLE password_resets;
