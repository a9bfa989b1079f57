"""The live pages' socket base (core/consumers.py): a page's consumer cannot forget its permission or its groups."""

import pytest

from core.consumers import GroupRelayConsumer


def test_a_consumer_without_a_permission_or_groups_is_refused_when_it_is_defined():
    with pytest.raises(TypeError, match="permission"):

        class NoPermission(GroupRelayConsumer):
            def groups_for(self, user):
                return ["g"]

    with pytest.raises(TypeError, match="groups_for"):

        class NoGroups(GroupRelayConsumer):
            permission = "fleet.view_kiosk"


def test_a_consumer_with_both_is_defined():
    class Page(GroupRelayConsumer):
        permission = "fleet.view_kiosk"

        def groups_for(self, user):
            return ["g"]

    assert Page.permission == "fleet.view_kiosk"
