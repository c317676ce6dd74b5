"""Sources and sinks (connectors), and the interfaces the runtime drives them through."""
