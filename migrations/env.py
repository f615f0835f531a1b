"""Alembic environment. logwatch calls Alembic in-process (Store.upgrade) and hands it its engine;
the ``alembic`` command line works too with ``-x url=...``."""

from alembic import context
from sqlalchemy import create_engine

from logwatch.storage import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = create_engine(url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
