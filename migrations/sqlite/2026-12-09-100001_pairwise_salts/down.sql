DROP TABLE pairwise_salts;
