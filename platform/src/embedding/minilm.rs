//! all-MiniLM-L6-v2 run locally with candle.
