DROP TABLE dead_letter_audit;
