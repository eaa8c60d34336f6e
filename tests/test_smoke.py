def test_owner_signs_in_and_sees_every_page(client, auth, owner):
    assert auth.login().status_code == 303
    for path, text in [
        ("/", "Welcome, Ada Lovelace"),
        ("/account/devices", "1 signed-in device"),
        ("/account", "Change your password"),
        ("/account/security", "Session timeouts"),
    ]:
        page = client.get(path)
        assert page.status_code == 200, path
        assert text in page.text, path
