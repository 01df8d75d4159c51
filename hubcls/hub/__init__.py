"""hubcls.hub"""
