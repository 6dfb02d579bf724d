-- Upgrade for legacy databases created before the console's admin indexes.
--
-- The legacy tables are not managed by Django migrations (their models are
-- managed = False and the schema belongs to the old system), so this is a
-- script for the DBA to run once, in a quiet hour, against an existing legacy
-- database:   mysql --defaults-file=... legacy_db < upgrade-0001-admin-indexes.mysql.sql
-- New databases get the same indexes from schema.mysql.sql (create_legacy_schema).
-- ALGORITHM=INPLACE, LOCK=NONE: InnoDB builds each index while reads and writes go on.
--
-- Why each index: the console's list filters (CLASS, COUNTRY, ACTIVE, ON_HOLD,
-- PAID, CURRENCY), date hierarchies (OPENED; INVDATE already has one) and the
-- open-invoices view (WHERE PAID = 0 ORDER BY DUEDATE, INVNO) read an index
-- range instead of the whole table; InnoDB appends the primary key to each
-- index, so "filter, then newest first" (ORDER BY INVNO DESC) needs no sort.

ALTER TABLE `CUSTMAST`
    ADD KEY `CUSTMAST_CLASS` (`CLASS`),
    ADD KEY `CUSTMAST_COUNTRY` (`COUNTRY`),
    ADD KEY `CUSTMAST_ACTIVE` (`ACTIVE`),
    ADD KEY `CUSTMAST_ON_HOLD` (`ON_HOLD`),
    ADD KEY `CUSTMAST_OPENED` (`OPENED`),
    ALGORITHM=INPLACE, LOCK=NONE;

ALTER TABLE `INVOICE`
    ADD KEY `INVOICE_PAID` (`PAID`),
    ADD KEY `INVOICE_PAID_DUEDATE` (`PAID`, `DUEDATE`),
    ADD KEY `INVOICE_CURRENCY` (`CURRENCY`),
    ALGORITHM=INPLACE, LOCK=NONE;
