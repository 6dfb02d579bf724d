"""Import and export: files read and written in bounded chunks, bound to the panel's database."""
