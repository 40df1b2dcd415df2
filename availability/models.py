# The availability mirror keeps no tables of its own: Postgres truth lives in mitras (status, log)
# and sessions_app (capacity is derived from chat_sessions); Valkey holds the mirror.
