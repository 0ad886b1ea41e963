DROP TABLE user_attributes;
DROP TABLE attribute_defs;
