"""Span attribute names: the OpenTelemetry GenAI semantic conventions, plus tether's own."""

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_STOP = "gen_ai.request.stop_sequences"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH = "gen_ai.response.finish_reasons"
USAGE_INPUT = "gen_ai.usage.input_tokens"
USAGE_OUTPUT = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
OUTPUT_TYPE = "gen_ai.output.type"  # "json" for an answer held to a schema
ERROR_TYPE = "error.type"

COST = "tether.cost_usd"
LATENCY = "tether.latency_s"
ALIAS = "tether.alias"
STREAM = "tether.stream"
TIME_TO_FIRST = "tether.time_to_first_event_s"
CANCELLED = "tether.cancelled"
OUTPUT_NAME = "tether.output.name"  # the schema the answer is held to
OUTPUT_MODE = "tether.output.mode"  # native, grammar, or auto (the provider's choice)
OUTPUT_BOUNDS = "tether.output.bounds"  # limits under a grammar (Bounds.describe)
METADATA = "tether.metadata"  # + ".KEY" for each of the request's metadata
EMBEDDINGS_COUNT = "tether.embeddings.count"  # texts sent to the model in this call
EMBEDDINGS_CACHED = "tether.embeddings.cached"  # texts of the same request found in the cache
EMBEDDINGS_TRUNCATED = "tether.embeddings.truncated"  # texts cut to the model's window
