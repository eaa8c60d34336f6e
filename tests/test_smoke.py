def test_owner_signs_in_and_sees_home(client, auth, owner):
    response = auth.login()
    assert response.status_code == 303
    home = client.get("/")
    assert home.status_code == 200
    assert "Welcome, Ada Lovelace" in home.text
