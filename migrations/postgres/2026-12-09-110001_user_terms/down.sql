DROP TABLE user_terms;
