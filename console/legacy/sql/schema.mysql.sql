-- Legacy order-entry schema, MySQL/MariaDB dialect (the production target).
--
-- Kept as the old system has it: upper-case names, a column called CLASS and
-- one called FROM (a reserved word, quoted), TINYINT(1) flags, no foreign-key
-- constraints (INVOICE.CUSTNO is a plain integer), a view and a composite key.
-- create_legacy_schema splits the statements with sqlparse and drops the comments.
-- Keep console/legacy/sql/schema.sqlite.sql in step.
-- Indexes marked "admin" serve the console's list filters, orderings and date
-- hierarchies on big tables; databases created before them get them from
-- upgrade-0001-admin-indexes.mysql.sql.

CREATE TABLE `CUSTMAST` (
    `CUSTNO` INT NOT NULL AUTO_INCREMENT,
    `NAME` VARCHAR(60) NOT NULL,
    `CLASS` CHAR(1) NOT NULL DEFAULT 'C',
    `EMAIL` VARCHAR(100) NULL,
    `CITY` VARCHAR(40) NOT NULL DEFAULT '',
    `COUNTRY` CHAR(2) NOT NULL DEFAULT '',
    `CREDIT_LIMIT` DECIMAL(12,2) NOT NULL DEFAULT 0,
    `ACTIVE` TINYINT(1) NOT NULL DEFAULT 1,
    `ON_HOLD` TINYINT(1) NOT NULL DEFAULT 0,
    `OPENED` DATE NOT NULL,
    `LASTCHG` DATETIME NULL,
    PRIMARY KEY (`CUSTNO`),
    KEY `CUSTMAST_NAME` (`NAME`),
    KEY `CUSTMAST_CLASS` (`CLASS`),
    KEY `CUSTMAST_COUNTRY` (`COUNTRY`),
    KEY `CUSTMAST_ACTIVE` (`ACTIVE`),
    KEY `CUSTMAST_ON_HOLD` (`ON_HOLD`),
    KEY `CUSTMAST_OPENED` (`OPENED`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `INVOICE` (
    `INVNO` INT NOT NULL AUTO_INCREMENT,
    `CUSTNO` INT NOT NULL,
    `INVDATE` DATE NOT NULL,
    `DUEDATE` DATE NOT NULL,
    `AMOUNT` DECIMAL(12,2) NOT NULL,
    `CURRENCY` CHAR(3) NOT NULL DEFAULT 'EUR',
    `PAID` TINYINT(1) NOT NULL DEFAULT 0,
    `PAIDDATE` DATE NULL,
    `REMARK` VARCHAR(200) NULL,
    PRIMARY KEY (`INVNO`),
    KEY `INVOICE_CUSTNO` (`CUSTNO`),
    KEY `INVOICE_INVDATE` (`INVDATE`),
    KEY `INVOICE_PAID` (`PAID`),
    KEY `INVOICE_PAID_DUEDATE` (`PAID`, `DUEDATE`),
    KEY `INVOICE_CURRENCY` (`CURRENCY`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `PRODUCT_PRICE` (
    `PRODUCT_CODE` VARCHAR(20) NOT NULL,
    `REGION` VARCHAR(10) NOT NULL,
    `PRICE` DECIMAL(12,2) NOT NULL,
    `CURRENCY` CHAR(3) NOT NULL DEFAULT 'EUR',
    `FROM` DATE NOT NULL,
    `DISCONTINUED` TINYINT(1) NOT NULL DEFAULT 0,
    PRIMARY KEY (`PRODUCT_CODE`, `REGION`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A log without any primary or unique key: identical rows may occur (the console lists it read-only).
CREATE TABLE `STOCK_MOVE` (
    `MOVED_AT` DATETIME NOT NULL,
    `PRODUCT_CODE` VARCHAR(20) NOT NULL,
    `QUANTITY` INT NOT NULL,
    `USERNAME` VARCHAR(30) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE VIEW `V_OPEN_INVOICES` AS
SELECT I.`INVNO`, I.`CUSTNO`, C.`NAME` AS `CUSTNAME`, I.`INVDATE`, I.`DUEDATE`, I.`AMOUNT`, I.`CURRENCY`
FROM `INVOICE` I
JOIN `CUSTMAST` C ON C.`CUSTNO` = I.`CUSTNO`
WHERE I.`PAID` = 0;

-- The item master: the column types and values of the old system that Django has no field
-- for (console/legacy/fields.py).  A latin1 table, as the old system's first tables were,
-- holding accented text; an ENUM and a SET; a TINYINT(1) flag; an unsigned BIGINT whose
-- largest value (18446744073709551615) no signed 64-bit integer holds; a column name with
-- a space and one that is a reserved word (ORDER); and zero dates ('0000-00-00'), the old
-- system's "no date".
-- A zero DEFAULT needs a session sql_mode without NO_ZERO_DATE / NO_ZERO_IN_DATE (MySQL 5.7+
-- and servers set up "TRADITIONAL" have them; MariaDB's default has not): the table is created
-- under an explicit strict mode without them, and the session's own mode is put back after.
-- The console's connections run with sql_mode STRICT_TRANS_TABLES (admin_site/conf.py), which
-- allows zero dates too, so rows holding them can be written.
SET @CONSOLE_SQL_MODE = @@SESSION.sql_mode;

SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION';

CREATE TABLE `ITEMMAST` (
    `ITEMNO` INT NOT NULL AUTO_INCREMENT,
    `DESCR` VARCHAR(60) NOT NULL,
    `STATUS` ENUM('active','discontinued','blocked') NOT NULL DEFAULT 'active',
    `FEATURES` SET('new','sale','fragile','bulky') NOT NULL DEFAULT '',
    `TAXABLE` TINYINT(1) NOT NULL DEFAULT 1,
    `SERIAL` BIGINT UNSIGNED NOT NULL DEFAULT 0,
    `UNIT PRICE` DECIMAL(12,2) NOT NULL DEFAULT 0,
    `ORDER` INT NOT NULL DEFAULT 0,
    `CREATED` DATE NOT NULL DEFAULT '0000-00-00',
    `LASTSOLD` DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
    PRIMARY KEY (`ITEMNO`)
) ENGINE=InnoDB DEFAULT CHARSET=latin1;

SET SESSION sql_mode = @CONSOLE_SQL_MODE;
