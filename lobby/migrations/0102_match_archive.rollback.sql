DROP INDEX match_results_stored;
DROP TABLE match_archive;
