#!/usr/bin/env bash
# Make the local MariaDB usable by the test suite and print the test URL.
#
# Starts the server when it is not answering, creates a dedicated user with a
# random password (root may only log in over the unix socket), and keeps the
# credentials in a MySQL option file (mode 0600) outside the checkout, never in
# the repo; every checkout on the machine shares it (one user, one password).
# Usage: eval "$(tests/mariadb.sh)"   -> exports CONSOLE_TEST_DATABASE_URL
set -euo pipefail
cd "$(dirname "$0")/.."
host=${MARIADB_HOST:-127.0.0.1}
port=${MARIADB_PORT:-3306}
cnf=${MARIADB_TEST_CNF:-${XDG_CONFIG_HOME:-$HOME/.config}/data-console/mariadb-test.cnf}
mkdir -p "$(dirname "$cnf")"

if ! mysqladmin --host="$host" --port="$port" --user=root --connect-timeout=2 ping >/dev/null 2>&1 \
   && ! mysqladmin --user=root --connect-timeout=2 ping >/dev/null 2>&1; then
    if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
        echo "MariaDB is not answering; starting it" >&2
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
        for _ in $(seq 1 60); do
            mysqladmin --user=root --connect-timeout=1 ping >/dev/null 2>&1 && break
            sleep 1
        done
    fi
fi
mysqladmin --user=root --connect-timeout=2 ping >/dev/null 2>&1 \
    || { echo "ERROR: MariaDB at $host:$port cannot be reached (is mariadb-server installed?)" >&2; exit 1; }

can_login() { mysql --defaults-file="$cnf" --host="$host" --port="$port" -e 'SELECT 1' >/dev/null 2>&1; }
if [ ! -s "$cnf" ] || ! can_login; then
    password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    mysql --user=root <<SQL
CREATE USER IF NOT EXISTS 'console_test'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS 'console_test'@'localhost' IDENTIFIED BY '$password';
ALTER USER 'console_test'@'127.0.0.1' IDENTIFIED BY '$password';
ALTER USER 'console_test'@'localhost' IDENTIFIED BY '$password';
SQL
    umask 077
    printf '[client]\nuser=console_test\npassword=%s\n' "$password" > "$cnf"
fi
# Every time, so a user made by an older checkout gets what this one needs. SLAVE MONITOR: the replica health
# check reads SHOW SLAVE STATUS (admin_site.replicas), as the console's account on a real replica must.
mysql --user=root <<SQL
GRANT ALL PRIVILEGES ON \`test\\_%\`.* TO 'console_test'@'127.0.0.1', 'console_test'@'localhost';
GRANT ALL PRIVILEGES ON \`console\\_%\`.* TO 'console_test'@'127.0.0.1', 'console_test'@'localhost';
GRANT PROCESS, SLAVE MONITOR ON *.* TO 'console_test'@'127.0.0.1', 'console_test'@'localhost';
SQL
can_login || { echo "ERROR: the test user cannot log in to MariaDB at $host:$port" >&2; exit 1; }
echo "export CONSOLE_TEST_DATABASE_URL='mysql://$host:$port/?read_default_file=$cnf'"
