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
