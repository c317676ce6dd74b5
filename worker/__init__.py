"""streamjob: stateful, exactly-once stream processing with Apache Flink's model, in Python.

The public API (PyFlink's names)::

    from streamjob import StreamEnvironment, WatermarkStrategy, Duration
"""

from streamjob.api.connected import ConnectedStreams
from streamjob.api.datastream import DataStream, KeyedStream
from streamjob.api.environment import StreamEnvironment
from streamjob.connectors.basic_sinks import CollectSink, CountingSink, PrintSink
from streamjob.connectors.collection import CollectionSource
from streamjob.connectors.file_sink import FileSink
from streamjob.connectors.files import TextFileSource
from streamjob.connectors.generator import GeneratorSource
from streamjob.connectors.sink import Sink, SinkWriter
from streamjob.connectors.source import Source, SourceReader, SourceSplit
from streamjob.duration import Duration
from streamjob.errors import JobDefinitionError, JobFailedError, StreamJobError, UserFunctionError
from streamjob.eventtime.strategy import TimestampAssigner, WatermarkStrategy
from streamjob.functions import OutputTag, TimeDomain

__all__ = [
    "CollectSink",
    "CollectionSource",
    "ConnectedStreams",
    "CountingSink",
    "DataStream",
    "Duration",
    "FileSink",
    "GeneratorSource",
    "JobDefinitionError",
    "JobFailedError",
    "KeyedStream",
    "OutputTag",
    "PrintSink",
    "Sink",
    "SinkWriter",
    "Source",
    "SourceReader",
    "SourceSplit",
    "StreamEnvironment",
    "StreamJobError",
    "TextFileSource",
    "TimeDomain",
    "TimestampAssigner",
    "UserFunctionError",
    "WatermarkStrategy",
]
