"""`quantdesk serve` refuses a port another program listens on, with the address in its words."""

import re
import socket

import pytest

from quantdesk.api.serving import CannotListen, check_port_free


def test_a_port_in_use_cannot_be_listened_on_and_a_free_one_can():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotListen, match=re.escape(f"cannot listen on 127.0.0.1:{port}: ")):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # closed: free again


def test_an_address_not_of_this_machine_cannot_be_listened_on():
    with pytest.raises(CannotListen, match=re.escape("cannot listen on 192.0.2.1:")):  # TEST-NET-1, never local
        check_port_free("192.0.2.1", 8000)
