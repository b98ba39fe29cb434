"""Every flow the assistant offers, in main-menu order."""

from __future__ import annotations

from conversations import (
    access_request,
    consent,
    consultation,
    desk,
    help,
    my_data,
    privacy,
    profile_update,
    reply,
    requirements,
    status,
)
from conversations.flow import Flow


def all_flows() -> list[Flow]:
    return [
        requirements.FLOW,
        access_request.FLOW,
        profile_update.FLOW,
        consultation.FLOW,
        status.FLOW,
        help.FLOW,
        consent.FLOW,
        privacy.FLOW,
        my_data.FLOW,
        my_data.ERASE_FLOW,
        access_request.CORRECTION_FLOW,
        reply.FLOW,
        desk.FLOW,
    ]
