-- The example shop database (examples/data/shop.db), made with:
--   python3 -c "import sqlite3; c = sqlite3.connect('examples/data/shop.db'); c.executescript(open('examples/data/shop.sql').read()); c.commit()"
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, price REAL NOT NULL, stock INTEGER NOT NULL);
INSERT INTO products (name, category, price, stock) VALUES
  ('Espresso beans 1kg', 'coffee', 24.90, 35),
  ('Filter papers', 'coffee', 3.50, 120),
  ('Green tea 100g', 'tea', 7.20, 0),
  ('Ceramic mug', 'kitchen', 9.00, 64),
  ('Milk frother', 'kitchen', 39.00, 8);
