"""The audit trail: canonical inspection events, where they go, and how they are kept."""

from guard.audit.events import AuditSink, EventKind, InspectionEvent, LogSink, new_event_id

__all__ = ["AuditSink", "EventKind", "InspectionEvent", "LogSink", "new_event_id"]
