"""The event-id dedupe state and file progress, on SQLite and on DynamoDB (moto server)."""

from cdpbridge.currents import FileProgress, event_key


def test_marked_events_are_found_and_others_are_not(currents_state):
    keys = [event_key("users.messages.email.Open", f"id-{index}") for index in range(250)]
    assert currents_state.already_routed(keys) == set()
    currents_state.mark_routed(keys[:120])
    assert currents_state.already_routed(keys) == set(keys[:120])


def test_an_event_key_is_16_bytes_and_depends_on_the_type_and_the_id():
    key = event_key("users.messages.email.Open", "f47ac10b-58cc-4372-a567-0e02b2c3d479")
    assert len(key) == 16
    assert key != event_key("users.messages.email.Click", "f47ac10b-58cc-4372-a567-0e02b2c3d479")
    assert key == event_key("users.messages.email.Open", "f47ac10b-58cc-4372-a567-0e02b2c3d479")


def test_marks_expire_after_their_ttl(currents_state):
    keys = [event_key("t", "a"), event_key("t", "b")]
    currents_state.mark_routed(keys)
    currents_state.now[0] += 3599
    assert currents_state.already_routed(keys) == set(keys)
    currents_state.now[0] += 2
    assert currents_state.already_routed(keys) == set()


def test_file_progress_is_saved_replaced_and_expires(currents_state):
    assert currents_state.load_progress("s3://b/k@e1") is None
    currents_state.save_progress(FileProgress("s3://b/k@e1", 500, False))
    assert currents_state.load_progress("s3://b/k@e1") == FileProgress("s3://b/k@e1", 500, False)
    currents_state.save_progress(FileProgress("s3://b/k@e1", 1000, True))
    assert currents_state.load_progress("s3://b/k@e1") == FileProgress("s3://b/k@e1", 1000, True)
    assert currents_state.load_progress("s3://b/k@e2") is None
    currents_state.now[0] += 3601
    assert currents_state.load_progress("s3://b/k@e1") is None


def test_many_keys_are_marked_and_found_over_several_requests(currents_state):
    keys = [event_key("users.behaviors.Purchase", f"id-{index}") for index in range(1_234)]
    currents_state.mark_routed(keys[::2])
    assert currents_state.already_routed(keys) == set(keys[::2])


def test_a_commit_marks_the_keys_and_saves_the_progress(currents_state):
    keys = [event_key("t", str(index)) for index in range(30)]
    currents_state.commit(keys, FileProgress("s3://b/k@e", 30, True))
    assert currents_state.already_routed(keys) == set(keys)
    assert currents_state.load_progress("s3://b/k@e") == FileProgress("s3://b/k@e", 30, True)
